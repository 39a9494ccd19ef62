"""The models a Qwen Code account serves on Qwen's OpenAI-compatible API (``portal.qwen.ai``).

The three reference ids keep CLIProxyAPI's limits so listings match; ``qwen3-max``, ``qwen3-vl-plus`` and
``coder-model`` (the id current Qwen Code versions send) are what the same OAuth accounts serve today.
"""

from __future__ import annotations

from typing import Final

from cliproxy.registries import ModelInfo

__all__ = ["CATALOG", "PROVIDER"]

PROVIDER: Final = "qwen"


def _model(model_id: str, display: str, description: str, created: int, context: int, output: int) -> ModelInfo:
    return ModelInfo(
        id=model_id,
        owned_by="qwen",
        type="qwen",
        display_name=display,
        description=description,
        created=created,
        version="3.0",
        input_token_limit=context,
        output_token_limit=output,
    )


CATALOG: Final[tuple[ModelInfo, ...]] = (
    _model(
        "qwen3-coder-plus", "Qwen3 Coder Plus", "Advanced code generation and understanding", 1753228800, 32768, 8192
    ),
    _model("qwen3-coder-flash", "Qwen3 Coder Flash", "Fast code generation", 1753228800, 8192, 2048),
    _model("coder-model", "Qwen Coder", "The coding model Qwen Code selects by default", 1753228800, 1_000_000, 65536),
    _model("qwen3-max", "Qwen3 Max", "Qwen3 flagship model", 1758672000, 262_144, 65536),
    _model("qwen3-vl-plus", "Qwen3 VL Plus", "Qwen3 vision-language model", 1758672000, 262_144, 32768),
    _model("vision-model", "Qwen3 Vision Model", "Vision model", 1758672000, 32768, 2048),
)

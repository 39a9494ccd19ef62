"""The models an iFlow account serves on ``apis.iflow.cn`` and how each one switches thinking on and off.

iFlow hosts open models from several vendors behind one OpenAI-compatible API. OpenAI's ``reasoning_effort``
means nothing to most of them; the ones that can think on request take a vendor switch instead:

* GLM, DeepSeek V3.1/V3.2 and Qwen3 Max Preview: ``chat_template_kwargs.enable_thinking`` (GLM also wants
  ``clear_thinking: false`` while thinking, so earlier reasoning stays in its context);
* MiniMax: ``reasoning_split`` (reasoning comes back separately from the answer).

Any effort other than ``none`` turns thinking on; ``none`` (or a zero budget from a Claude or Gemini client)
turns it off. Models without a switch (``deepseek-r1`` always thinks, ``kimi-k2`` never does) get no field.
"""

from __future__ import annotations

from typing import Final, Literal

from cliproxy.registries import ModelInfo, ThinkingSupport

__all__ = ["CATALOG", "PROVIDER", "ThinkingSwitch", "thinking_switch"]

PROVIDER: Final = "iflow"

ThinkingSwitch = Literal["enable_thinking", "glm", "reasoning_split"]

_ON_OFF: Final = ThinkingSupport(zero_allowed=True, levels=("none", "low", "medium", "high"))


def thinking_switch(model: str) -> ThinkingSwitch | None:
    """The switch ``model`` takes, or ``None`` when its thinking cannot be toggled per request."""
    low = model.lower()
    if low.startswith("glm"):
        return "glm"
    if low.startswith("minimax"):
        return "reasoning_split"
    if low in ("qwen3-max-preview", "deepseek-v3.2", "deepseek-v3.1"):
        return "enable_thinking"
    return None


def _model(model_id: str, display: str, description: str, created: int) -> ModelInfo:
    return ModelInfo(
        id=model_id,
        owned_by="iflow",
        type="iflow",
        display_name=display,
        description=description,
        created=created,
        thinking=_ON_OFF if thinking_switch(model_id) else None,
    )


CATALOG: Final[tuple[ModelInfo, ...]] = (
    _model("tstars2.0", "TStars-2.0", "iFlow TStars-2.0 multimodal assistant", 1746489600),
    _model("qwen3-coder-plus", "Qwen3-Coder-Plus", "Qwen3 Coder Plus code generation", 1753228800),
    _model("qwen3-coder", "Qwen3-Coder-480B-A35B", "Qwen3 Coder 480B A35B", 1753228800),
    _model("qwen3-max", "Qwen3-Max", "Qwen3 flagship model", 1758672000),
    _model("qwen3-vl-plus", "Qwen3-VL-Plus", "Qwen3 multimodal vision-language", 1758672000),
    _model("qwen3-max-preview", "Qwen3-Max-Preview", "Qwen3 Max preview build", 1757030400),
    _model("kimi-k2-0905", "Kimi-K2-Instruct-0905", "Moonshot Kimi K2 instruct 0905", 1757030400),
    _model("glm-4.6", "GLM-4.6", "Zhipu GLM 4.6 general model", 1759190400),
    _model("kimi-k2", "Kimi-K2", "Moonshot Kimi K2 general model", 1752192000),
    _model("deepseek-v3.2", "DeepSeek-V3.2-Exp", "DeepSeek V3.2 experimental", 1759104000),
    _model("deepseek-v3.1", "DeepSeek-V3.1-Terminus", "DeepSeek V3.1 Terminus", 1756339200),
    _model("deepseek-r1", "DeepSeek-R1", "DeepSeek reasoning model R1", 1737331200),
    _model("deepseek-v3", "DeepSeek-V3-671B", "DeepSeek V3 671B", 1734307200),
    _model("qwen3-32b", "Qwen3-32B", "Qwen3 32B", 1747094400),
    _model("qwen3-235b-a22b-thinking-2507", "Qwen3-235B-A22B-Thinking", "Qwen3 235B A22B Thinking (2507)", 1753401600),
    _model("qwen3-235b-a22b-instruct", "Qwen3-235B-A22B-Instruct", "Qwen3 235B A22B Instruct", 1753401600),
    _model("qwen3-235b", "Qwen3-235B-A22B", "Qwen3 235B A22B", 1753401600),
    _model("minimax-m2", "MiniMax-M2", "MiniMax M2", 1758672000),
)

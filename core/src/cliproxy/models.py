"""Model registry: which providers serve a model id, and which credentials serve it within a provider.

Rebuilt from scratch on every credential or config change (cheap: a few thousand dict entries) and swapped in
atomically, so lookups on the request path are plain dict reads with no locking.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .credentials import Credential
from .ir import ReasoningConfig
from .registries import ModelInfo, ModelRule

__all__ = ["ModelRegistry", "RegisteredModel"]


@dataclass(slots=True)
class RegisteredModel:
    info: ModelInfo
    #: provider -> number of credentials serving the model through it.
    providers: dict[str, int] = field(default_factory=dict)
    credentials: list[str] = field(default_factory=list)


class ModelRegistry:
    def __init__(
        self, catalog: Mapping[str, list[ModelInfo]] | None = None, rules: Mapping[str, ModelRule] | None = None
    ) -> None:
        self.catalog: dict[str, list[ModelInfo]] = {k: list(v) for k, v in (catalog or {}).items()}
        #: provider -> its model-name rule (``register_model_rules``), swapped whole on reload.
        self.rules: dict[str, ModelRule] = dict(rules or {})
        self._models: dict[str, RegisteredModel] = {}
        self._cred_models: dict[str, frozenset[str]] = {}
        self._order: dict[str, list[str]] = {}

    def rebuild(self, credentials: Iterable[Credential]) -> None:
        models: dict[str, RegisteredModel] = {}
        cred_models: dict[str, frozenset[str]] = {}
        for cred in credentials:
            if cred.disabled:
                continue
            infos = self.models_for(cred)
            ids: set[str] = set()
            for info in infos:
                low = info.id.lower()
                if low in ids:
                    continue
                ids.add(low)
                entry = models.get(low)
                if entry is None:
                    entry = models[low] = RegisteredModel(info)
                entry.providers[cred.provider] = entry.providers.get(cred.provider, 0) + 1
                entry.credentials.append(cred.id)
            cred_models[cred.id] = frozenset(ids)
        order = {
            low: sorted(e.providers, key=lambda p, e=e: (-e.providers[p], p))  # type: ignore[misc]
            for low, e in models.items()
        }
        self._models, self._cred_models, self._order = models, cred_models, order

    def models_for(self, cred: Credential) -> list[ModelInfo]:
        if cred.models is not None:
            return [
                ModelInfo(
                    id=m.client_id,
                    owned_by=cred.attributes.get("owned_by", cred.label or cred.provider),
                    type=cred.attributes.get("model_type", cred.provider),
                    display_name=m.name or m.client_id,
                )
                for m in cred.models
                if m.client_id
            ]
        return self.catalog.get(cred.provider, [])

    def providers_for(self, model: str) -> list[str]:
        """Providers serving ``model``: most credentials first, then by name (stable)."""
        return self._order.get(model.lower(), [])

    def resolve_rule(self, model: str) -> tuple[str, ReasoningConfig | None, list[str]]:
        """For a model id nobody serves as such: ``(base model, thinking override, providers)`` by model rules.

        A provider's rule applies to that provider only (the naming is its convention), and only when one of
        its credentials serves the base model. Providers whose rules read the name the same way share the
        request, in ``providers_for`` order. ``(model, None, [])`` when no rule applies.
        """
        rules = self.rules
        for provider, rule in rules.items():
            hit = rule(model)
            if hit is None:
                continue
            served = self.providers_for(hit[0])
            if provider not in served:
                continue
            providers = [p for p in served if p == provider or ((r := rules.get(p)) is not None and r(model) == hit)]
            return hit[0], hit[1], providers
        return model, None, []

    def info(self, model: str) -> ModelInfo | None:
        entry = self._models.get(model.lower())
        return entry.info if entry else None

    def serves(self, cred_id: str, model: str) -> bool:
        return model.lower() in self._cred_models.get(cred_id, frozenset())

    def catalog_info(self, model: str) -> ModelInfo | None:
        """Metadata from static catalogs even when no credential serves the model (thinking ranges)."""
        low = model.lower()
        for infos in self.catalog.values():
            for info in infos:
                if info.id.lower() == low:
                    return info
        return None

    def all(self) -> list[RegisteredModel]:
        return sorted(self._models.values(), key=lambda e: (min(e.providers, default=""), e.info.id))

"""Registrars handed to plugin hooks, and the model metadata they register.

A registrar records which plugin registered each entry, so duplicates fail with both plugin names and
``cliproxy plugins list`` can say what every plugin contributes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, NoReturn, Protocol, TypeVar

import msgspec

if TYPE_CHECKING:
    from .credentials import Credential
    from .formats.base import Codec
    from .ir import ReasoningConfig
    from .protocols import Authenticator, ExecutorFactory

__all__ = [
    "AuthenticatorRegistrar",
    "ConfigCheck",
    "ConfigIssues",
    "ConfigRegistrar",
    "ConfigSection",
    "DuplicateRegistration",
    "ExecutorRegistrar",
    "FormatRegistrar",
    "ModelInfo",
    "ModelRegistrar",
    "ModelRule",
    "ModelRuleRegistrar",
    "QuotaFallback",
    "QuotaFallbackRegistrar",
    "Registry",
    "RouteRegistrar",
    "ThinkingSupport",
]

K = TypeVar("K")
V = TypeVar("V")


class DuplicateRegistration(ValueError):
    pass


class ThinkingSupport(msgspec.Struct, frozen=True, omit_defaults=True):
    """Budget range a model accepts; drives effort/budget clamping."""

    min: int = 0
    max: int = 0
    zero_allowed: bool = False
    dynamic_allowed: bool = False
    #: Discrete levels for effort-style models (``low``, ``medium``, ``high``).
    levels: tuple[str, ...] = ()


class ModelInfo(msgspec.Struct, frozen=True, omit_defaults=True, kw_only=True):
    id: str
    owned_by: str = ""
    #: Family shown in Claude-style listings: ``claude``, ``gemini``, ``openai``, ``qwen`` ...
    type: str = ""
    display_name: str = ""
    description: str = ""
    created: int = 0
    version: str = ""
    input_token_limit: int = 0
    output_token_limit: int = 0
    thinking: ThinkingSupport | None = None
    supported_methods: tuple[str, ...] = ("generateContent",)


class Registry(Generic[K, V]):
    """A dict that remembers the registering plugin of each key and refuses silent overrides."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: dict[K, V] = {}
        self.owners: dict[K, str] = {}

    def add(self, key: K, value: V, owner: str) -> None:
        if key in self.items:
            raise DuplicateRegistration(f"{self.what} {key!r} registered by both {self.owners[key]!r} and {owner!r}")
        self.items[key] = value
        self.owners[key] = owner

    def __contains__(self, key: object) -> bool:
        return key in self.items

    def __getitem__(self, key: K) -> V:
        return self.items[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, key: K) -> V | None:
        return self.items.get(key)

    def by_owner(self, owner: str) -> list[K]:
        return [k for k, o in self.owners.items() if o == owner]


class _Bound:
    __slots__ = ("owner",)

    def __init__(self, owner: str) -> None:
        self.owner = owner


class ConfigIssues(Protocol):
    """Where a section's ``check`` reports problems; ``path`` is relative to the section (``[0, "name"]``).

    Both name the file and line of the deepest part of ``path`` that exists in the YAML.
    """

    def warn(self, path: Sequence[str | int], message: str) -> None:
        """Record a warning (shown at startup, on reload and by ``cliproxy config check``)."""

    def error(self, path: Sequence[str | int], message: str) -> NoReturn:
        """Reject the config: startup stops, a reload keeps the running config."""
        raise NotImplementedError


#: ``check(value, issues) -> value``: runs after type validation; returns the value to keep (cleaned up).
ConfigCheck = Callable[[Any, ConfigIssues], Any]


class ConfigSection(msgspec.Struct, frozen=True):
    key: str
    type: Any
    default: Any
    check: ConfigCheck | None = None


class ConfigRegistrar(_Bound):
    def __init__(self, owner: str, registry: Registry[str, ConfigSection]) -> None:
        super().__init__(owner)
        self._registry = registry

    def __call__(self, key: str, type: Any, *, default: Any = None, check: ConfigCheck | None = None) -> None:
        self._registry.add(key, ConfigSection(key, type, default, check), self.owner)


class FormatRegistrar(_Bound):
    def __init__(self, owner: str, registry: Registry[str, Codec]) -> None:
        super().__init__(owner)
        self._registry = registry

    def __call__(self, codec: Codec) -> None:
        self._registry.add(codec.name, codec, self.owner)


class ModelRegistrar(_Bound):
    def __init__(self, owner: str, catalog: dict[str, list[ModelInfo]], owners: dict[str, str]) -> None:
        super().__init__(owner)
        self._catalog = catalog
        self._owners = owners

    def __call__(self, provider: str, info: ModelInfo) -> None:
        known = self._owners.setdefault(provider, self.owner)
        if known != self.owner:
            raise DuplicateRegistration(
                f"models of provider {provider!r} registered by both {known!r} and {self.owner!r}"
            )
        self._catalog.setdefault(provider, []).append(info)


class ExecutorRegistrar(_Bound):
    def __init__(self, owner: str, registry: Registry[str, ExecutorFactory]) -> None:
        super().__init__(owner)
        self._registry = registry

    def __call__(self, name: str, factory: ExecutorFactory) -> None:
        self._registry.add(name, factory, self.owner)


class AuthenticatorRegistrar(_Bound):
    def __init__(self, owner: str, registry: Registry[str, Authenticator]) -> None:
        super().__init__(owner)
        self._registry = registry

    def __call__(self, authenticator: Authenticator) -> None:
        self._registry.add(authenticator.provider, authenticator, self.owner)


QuotaFallback = Callable[["Credential", str, int], "str | None"]


class QuotaFallbackRegistrar(_Bound):
    def __init__(self, owner: str, registry: Registry[str, QuotaFallback]) -> None:
        super().__init__(owner)
        self._registry = registry

    def __call__(self, provider: str, fallback: QuotaFallback) -> None:
        self._registry.add(provider, fallback, self.owner)


#: ``rule(model) -> (base model, thinking override) | None`` for a model id no credential serves as such.
ModelRule = Callable[[str], "tuple[str, ReasoningConfig] | None"]


class ModelRuleRegistrar(_Bound):
    def __init__(self, owner: str, registry: Registry[str, ModelRule]) -> None:
        super().__init__(owner)
        self._registry = registry

    def __call__(self, provider: str, rule: ModelRule) -> None:
        self._registry.add(provider, rule, self.owner)


class RouteRegistrar(_Bound):
    def __init__(self, owner: str, handlers: list[Any], owners: list[str]) -> None:
        super().__init__(owner)
        self._handlers = handlers
        self._owners = owners

    def __call__(self, handler: Any) -> None:
        self._handlers.append(handler)
        self._owners.append(self.owner)

"""CodePipeline variables: `#{namespace.key}` in action configuration, resolved before the action runs."""

from __future__ import annotations

import re

_REFERENCE = re.compile(r"#\{([A-Za-z0-9@\-_]+)\.([A-Za-z0-9@\-_]+)\}")


class UnresolvedVariable(ValueError):
    pass


def resolve(configuration: dict[str, str], namespaces: dict[str, dict[str, str]]) -> dict[str, str]:
    """Substitutes every reference; an unknown namespace or key is an error, as in CodePipeline."""

    def substitute(match: re.Match) -> str:
        namespace, key = match.group(1), match.group(2)
        if namespace not in namespaces:
            raise UnresolvedVariable(f"The namespace {namespace!r} in {match.group(0)} is not produced by an earlier action")
        if key not in namespaces[namespace]:
            raise UnresolvedVariable(f"The variable {match.group(0)} does not exist in namespace {namespace!r}")
        return str(namespaces[namespace][key])

    return {k: _REFERENCE.sub(substitute, v) if isinstance(v, str) else v for k, v in configuration.items()}

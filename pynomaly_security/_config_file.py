"""The JSON configuration file named by ``PYNOMALY_SECURITY_CONFIG`` (issue 14).

pydantic-settings' own ``JsonConfigSettingsSource`` reads the file and the settings'
source order merges it (below the environment and ``.env``, which win over it); this
module only checks the file's keys first, because the settings ignore unknown names
(an environment holds many variables that are not ours) while a file is all ours: a
mistyped key would otherwise be dropped without a word.

Keys are the settings' names in lower case (``{"detection_mode": "detect"}``), a
section whole or by flat name (``{"inspection": {"max_fields": 500}}`` or
``{"inspection_max_fields": 500}``), and any group of names sharing a prefix as an
object (``{"rate_limit": {"key": "user"}}`` is ``rate_limit_key``). An unknown key is
refused with its path (``rate_limit.burts``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_settings import BaseSettings, JsonConfigSettingsSource

from pynomaly_security.exceptions import ConfigurationError

__all__ = ["CONFIG_ENV", "JsonConfigFile"]

CONFIG_ENV = "PYNOMALY_SECURITY_CONFIG"


class JsonConfigFile(JsonConfigSettingsSource):
    """The settings in the JSON file ``path``, keys checked (see the module).

    Raises:
        ConfigurationError: the file is missing, is not a JSON object, or has an
            unknown key (named by its path).
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        path: str,
        sections: Mapping[str, type[BaseModel]],
    ) -> None:
        self._label = f"{CONFIG_ENV} ({path})"
        self._sections = sections
        self._fields = set(settings_cls.model_fields)
        if not Path(path).is_file():
            raise ConfigurationError(f"{self._label}: no such file")
        try:
            super().__init__(settings_cls, json_file=path)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{self._label}: not valid JSON ({exc})") from None

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        data = super()._read_file(file_path)
        if not isinstance(data, dict):
            raise ConfigurationError(f"{self._label}: must hold one JSON object")
        return self._flatten(data, ())

    def _flatten(self, data: Mapping[str, Any], prefix: tuple[str, ...]) -> dict[str, Any]:
        # Sections become flat names, so a flat environment variable still wins over
        # the file (a whole section would win over flat names, see _group_sections).
        found: dict[str, Any] = {}
        for key, value in data.items():
            path = (*prefix, str(key))
            name = "_".join(path)
            if name in self._sections and isinstance(value, dict):
                known = self._sections[name].model_fields
                for inner, inner_value in value.items():
                    if inner not in known:
                        raise self._unknown((*path, inner))
                    found[f"{name}_{inner}"] = inner_value
            elif name in self._fields or self._is_flat_section_name(name):
                found[name] = value
            elif isinstance(value, dict) and value:
                found.update(self._flatten(value, path))
            else:
                raise self._unknown(path)
        return found

    def _is_flat_section_name(self, name: str) -> bool:
        return any(
            name == f"{section}_{inner}"
            for section, model in self._sections.items()
            for inner in model.model_fields
        )

    def _unknown(self, path: tuple[str, ...]) -> ConfigurationError:
        return ConfigurationError(f"{self._label}: unknown key {'.'.join(path)}")

"""Settings and the data files: the bottom layer, imported by everything above it."""

from config._data import (
    POSTING_TYPES,
    ModelCard,
    ModelCatalog,
    Persona,
    PostingType,
    PromptTemplates,
    model_catalog,
    personas,
    prompt_templates,
)
from config._logging import configure_logging
from config._settings import Backend, Settings, SettingsError, load_settings

__all__ = [
    "POSTING_TYPES",
    "Backend",
    "ModelCard",
    "ModelCatalog",
    "Persona",
    "PostingType",
    "PromptTemplates",
    "Settings",
    "SettingsError",
    "configure_logging",
    "load_settings",
    "model_catalog",
    "personas",
    "prompt_templates",
]

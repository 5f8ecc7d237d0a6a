"""Settings: declared once (table), gathered in layers, read from TOML, checked into a plan per camera.

``table``     every setting: kind, range, default, help, flag, reload or restart
``values``    ConfigError and the parsers settings share (sizes, names, NAME=VALUE lists)
``tomlfile``  reading a camstream.toml, with line numbers in errors
``layers``    defaults < file < CAMSTREAM_* variables < the given mapping
``plan``      what each camera is to be, checked before anything starts
``docs``      the settings page of the docs, made from the table
"""

from .layers import Settings, gather
from .plan import Plan, make_plan
from .values import ConfigError

__all__ = ["ConfigError", "Plan", "Settings", "gather", "make_plan"]

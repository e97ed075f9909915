"""Firmware templates (Jinja), shipped inside the wheel as the package ``tinygen._templates``."""

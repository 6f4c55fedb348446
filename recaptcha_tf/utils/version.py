"""The package version (one place: the package root and `recaptcha-tf --version` read it here)."""

__version__ = "0.2.0"

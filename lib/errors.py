"""One family of errors, like requests' RequestException: a page or a job catches ``DashboardError``.

Every domain error derives from it (and, where it already did, from the built-in it resembles, so
``except ValueError`` keeps working):

- ``ConfigError`` (lib.config): a setting is missing or wrong; the message names the setting.
- ``TrutoError`` (lib.truto.client): one Truto request failed for good (status, code, what to do).
- ``FetchError`` (lib.truto.fetch): nothing could be fetched at all.
- ``PriceBookError``, ``FxRatesError`` (lib.analytics.pricing): an uploaded or edited file has
  problems, every one listed by row and column; nothing was applied.
- ``SchemaError``, ``SettingsError`` (lib.store): the database schema or stored settings.
"""

from __future__ import annotations


class DashboardError(Exception):
    """The root of every error this project raises on purpose."""

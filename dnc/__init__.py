"""Domain core of cxone-dnc-sync, shared by the receiver, the sync flow and the CLI.

Modules: ``settings`` (pydantic-settings per area), ``events`` (event model),
``e164`` (phone-number normalisation), ``timestamps`` (event-time parsing),
``intake`` (raw fields -> validated event), ``keys`` (Redis key names),
``store`` (Redis writes through Lua), ``masking`` (log-safe numbers), ``errors``.
This package never imports Prefect, the receiver or the CLI.
"""

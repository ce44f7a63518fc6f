"""The web layer of ``heat process`` and ``heat sink``: Faust web views, thin.

``views``: ``/metrics`` and ``/health`` of every worker. ``live``: the read-only
facade over the active engine (latest committed frames, subscriptions, a what-if
copy of the market). ``api``: the versioned bot API (``/v1/...``) on that facade.
``members``: which worker holds the engine, from Faust's assignment. ``page``: the
live heat page (``/live``, static assets in ``static/``) over that API. ``tokens``: the
API's bearer tokens and their file (``heat token``); ``access``: the checks and limits
the API applies with them; ``settings``: their ``HEAT_API_*`` configuration.
"""

"""The one definition of every message the product exchanges (SPEC'd JSON on Kafka).

Inputs (``prices``, ``positions``, ``accounts``) are validated here, so a
record either decodes into a Struct or is rejected with a reason; outputs
(heat frames, alerts) are encoded from the same Structs by every producer,
``heat replay`` included. Time inside the product is integer epoch milliseconds,
converted only at the edges.

Import every name from here (``from heatmap.schema import Frame``); the modules,
one concern each:

- :mod:`~heatmap.schema.names`: the rule every symbol, account, desk, strategy and
  source name follows;
- :mod:`~heatmap.schema.timestamps`: epoch milliseconds to and from RFC 3339 text
  and aware datetimes;
- :mod:`~heatmap.schema.errors`: the error a refused record raises;
- :mod:`~heatmap.schema.inputs`: prices, positions and account terms;
- :mod:`~heatmap.schema.outputs`: heat frames, alerts and correlation matrices;
- :mod:`~heatmap.schema.whatif`: the what-if request and answer of the bot API;
- :mod:`~heatmap.schema.codec`: JSON decoding of inputs, encoding of any message.
"""

from heatmap.schema.codec import InputMessage, decode, encode
from heatmap.schema.errors import InvalidMessageError
from heatmap.schema.inputs import Account, Position, Price
from heatmap.schema.names import NAME_MAX_CHARS, NAME_RULE, Name, Symbol, valid_name
from heatmap.schema.outputs import (
    Alert,
    AlertKind,
    AlertLevels,
    AlertState,
    ClusterRow,
    Correlation,
    CorrelationSnapshot,
    Frame,
    PositionRow,
    Quadrant,
    Severity,
    Trigger,
)
from heatmap.schema.timestamps import (
    datetime_to_ms,
    ms_to_datetime,
    ms_to_rfc3339,
    rfc3339_to_ms,
)
from heatmap.schema.whatif import (
    WHATIF_MAX_ABS_QTY,
    WHATIF_MAX_ORDERS,
    BookKind,
    Change,
    ClusterChange,
    LimitedBy,
    OrderLimit,
    PositionChange,
    WhatIf,
    WhatIfDelta,
    WhatIfOrder,
    WhatIfRequest,
)

__all__ = [
    "NAME_MAX_CHARS",
    "NAME_RULE",
    "WHATIF_MAX_ABS_QTY",
    "WHATIF_MAX_ORDERS",
    "Account",
    "Alert",
    "AlertKind",
    "AlertLevels",
    "AlertState",
    "BookKind",
    "Change",
    "ClusterChange",
    "ClusterRow",
    "Correlation",
    "CorrelationSnapshot",
    "Frame",
    "InputMessage",
    "InvalidMessageError",
    "LimitedBy",
    "Name",
    "OrderLimit",
    "Position",
    "PositionChange",
    "PositionRow",
    "Price",
    "Quadrant",
    "Severity",
    "Symbol",
    "Trigger",
    "WhatIf",
    "WhatIfDelta",
    "WhatIfOrder",
    "WhatIfRequest",
    "datetime_to_ms",
    "decode",
    "encode",
    "ms_to_datetime",
    "ms_to_rfc3339",
    "rfc3339_to_ms",
    "valid_name",
]

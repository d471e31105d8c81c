"""delivery v1 -> v2: courier-first orders for non-partner restaurants arrive.

Every v1 order came from a partner restaurant, so it stays on the partner path. v1's
`submitted` (offered to the restaurant, waiting for an answer) is v2's `offered`; its
10-minute answer timer moves with it, keeping its due time.
"""

STATES = {
    "submitted": "offered",
    "preparing": "preparing",
    "dispatching": "dispatching",
    "courier_assigned": "courier_assigned",
    "delivering": "delivering",
    "delivered": "delivered",
    "canceled": "canceled",
}

TIMERS = "keep"


def map_data(instance):
    """v1 knew only partner restaurants; v2 needs to know, and has a purchase total for courier-first."""
    return {**instance.data, "partner": True, "purchase_total": None}

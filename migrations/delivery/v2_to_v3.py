"""delivery v2 -> v3: restaurants that deliver themselves.

No state was renamed or removed; `ready` and `restaurant_delivering` are new and no v2
instance can be in them. Every v2 order was delivered by a courier.
"""

STATES = {
    "submitted": "submitted",
    "offered": "offered",
    "preparing": "preparing",
    "dispatching": "dispatching",
    "courier_assigned": "courier_assigned",
    "courier_first": "courier_first",
    "delivering": "delivering",
    "delivered": "delivered",
    "canceled": "canceled",
}


def map_data(instance):
    return {**instance.data, "delivered_by": "courier"}

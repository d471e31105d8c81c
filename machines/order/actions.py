"""Python actions of the order machine: the parts that talk to the outside world.

Actions never call a payment provider directly: they emit a domain event that the caller
commits with the new state (a transactional outbox), and a relay delivers it.
"""

from statechart import ActionContext


def start_payment(ctx: ActionContext) -> None:
    ctx.data["retries"] = ctx.data["retries"] + (1 if ctx.event and ctx.event.name == "CHECKOUT" else 0)
    ctx.emit("payment.requested", {"amount": ctx.data["total"]})

"""onboarding v1 -> v2: the welcome email now depends on the acquisition channel.

A v1 user at rest has already been welcomed (welcoming is passed through in the same step),
so states map to themselves and nobody is welcomed twice. The v2 data model has a channel;
v1 never recorded one, so we derive it from what v1 did know.
"""

STATES = {
    "welcoming": "welcoming",
    "waiting": "waiting",
    "dripping": "dripping",
    "completed": "completed",
    "unsubscribed": "unsubscribed",
}


def map_data(instance):
    email = instance.data.get("email") or ""
    channel = "referral" if "+ref" in email else "organic"
    return {**instance.data, "channel": channel}

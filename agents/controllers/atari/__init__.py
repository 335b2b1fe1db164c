"""Atari controller structures and the facts they are written from (facts.py).

Tried in CONTROLLERS order: the first whose suits(facts) is true is chosen."""

CONTROLLERS = {
    "intercept": "agents.controllers.atari.intercept",
    "shooter": "agents.controllers.atari.shooter",
    "route": "agents.controllers.atari.route",
    "reactive": "agents.controllers.atari.reactive",  # reads the frame itself: also a challenger to the others
    "screen_route": "agents.controllers.atari.screen_route",  # a search over screen cells: any game, also a challenger
    "pattern": "agents.controllers.atari.pattern",  # suits every game: the fallback, and the baseline
}
FACTS = "agents.controllers.atari.facts"  # facts_from_probe(report, obs_mode, protocol) -> AtariFacts

"""Access control: tokens with roles, the rule of every route, the request guard
that enforces them and its wiring into the application."""

"""Access control: tokens with roles, and the rule of every route."""

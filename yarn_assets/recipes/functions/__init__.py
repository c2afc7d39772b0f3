"""Built-in functions and flows recipes may call (registered on import by ``registry.load``)."""

"""SCB core: CA, policy, protocol, store, DNS and config, free of sockets."""

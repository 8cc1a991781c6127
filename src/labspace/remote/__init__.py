"""The client side of remote access (tunnels, port forwarding): runs on a laptop."""

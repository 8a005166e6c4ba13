"""System state: REST snapshot, health and the state WebSocket."""

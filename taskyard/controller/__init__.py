"""The controller: hub, heartbeat monitor, task records, devices and the task scheduler."""

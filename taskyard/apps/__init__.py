"""The command-line applications: ipcontroller, ipengine, ipcluster."""

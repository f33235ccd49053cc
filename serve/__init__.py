"""Ray Serve applications, one per file, each with a typed builder: `serve run serve.<module>:build_app key=value`."""

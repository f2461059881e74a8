"""Jobs: refresh, the scheduled sync, demo seeding and the command line."""

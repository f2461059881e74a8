"""Jobs run outside the pages: delivering alerts and digests."""

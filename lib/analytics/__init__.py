"""Analytics built on the license table: contracts, renewals and alerts."""

"""Analytics: pure pandas functions from the tidy tables to every figure the dashboard shows."""

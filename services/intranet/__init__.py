"""The intranet channel: Budkavle serves the news itself — news list, item pages, status page, Atom feed."""

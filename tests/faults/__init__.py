"""The fault suite: outages, kills, load and hostile input against real processes and servers."""

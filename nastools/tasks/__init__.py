"""The embedded datasets: data that ships inside an installed package, so nothing is downloaded."""

"""The live dispatch map for staff: streets, drivers and open trips, pushed about once a second."""

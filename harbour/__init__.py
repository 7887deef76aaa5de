"""Harbour: the EMR side of the Ocean eReferral integration."""

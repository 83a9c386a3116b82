"""A simulated Spark Ads world and the study runner that validates policies offline."""

print("citrus-do-sim: not built yet")

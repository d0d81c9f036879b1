print("citrus-reconciler: not built yet")

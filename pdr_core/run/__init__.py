"""Running methods: the engine, the methods and their stages, operators, jobs."""

"""The stream processor: run state by last value wins, the faust app, replay and dead letters."""

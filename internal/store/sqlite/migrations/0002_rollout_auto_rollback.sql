-- A rollout's choice to roll back, rather than only halt, when the health
-- gate finds it unhealthy: kept with the rollout so that it survives a
-- restart and is honoured by whichever replica runs the controller.
ALTER TABLE rollouts ADD COLUMN auto_rollback INTEGER NOT NULL DEFAULT 0;

from services.loyalty.models import metadata
from shared.alembic_env import run

run(metadata)

"""First run: a fresh install with no owner lets the first visitor create one and get its key."""

from typing import Annotated

from fastapi import APIRouter, Body, status

from api.deps import SessionDep
from api.errors import problem_responses
from schemas.setup import FirstOwner, SetupCreate, SetupStatus
from services.owners.service import create_first_owner, first_owner_needed

router = APIRouter(prefix="/v1/setup", tags=["setup"])

PROBLEMS = problem_responses({409: "an owner exists already: the service is set up"})


@router.get("", name="status", response_model=SetupStatus, responses=PROBLEMS)
def setup_status(db: SessionDep) -> SetupStatus:
    """Whether the service still needs its first owner (no authentication: nothing else is told)."""
    return SetupStatus(owner_needed=first_owner_needed(db))


@router.post(
    "", name="create", status_code=status.HTTP_201_CREATED, response_model=FirstOwner, responses=PROBLEMS
)
def create_first(db: SessionDep, body: Annotated[SetupCreate | None, Body()] = None) -> FirstOwner:
    """Create the first owner and its API key, shown once. Works only while no owner exists (409
    after), so an install started without `SHOEBOX_BOOTSTRAP_KEY` can be claimed from the web app."""
    name = (body or SetupCreate()).name
    issued = create_first_owner(db, name=name)
    return FirstOwner(owner_id=issued.owner_id, name=name, key_id=issued.id, api_key=issued.key)

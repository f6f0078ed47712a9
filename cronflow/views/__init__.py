"""The live views of one jobs file: `cronflow top` (the terminal, Textual) and `cronflow serve`
(the browser and a JSON API, Starlette on uvicorn), over one query layer (reading.py) and one
set of actions (actions.py). Their libraries are imported only by their command."""

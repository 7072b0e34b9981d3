"""Disabled by the app setting AzureWebJobs.Legacy.Disabled in local.settings.json."""

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("legacy")

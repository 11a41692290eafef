region            = "eu-west-1"
github_repository = "contacts-platform/contacts"

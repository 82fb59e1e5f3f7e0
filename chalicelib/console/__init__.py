"""The ops console (运营台): a web page, served by this app, where ops and store managers see the
chain and change its rules (issue 20).

    GET  /console                      the page (static/, built from console/src by ``make console``)
    GET  /console/assets/{name}        its script chunks and style sheet
    /console/api/…                     what the page reads and changes (``routes``), each call
                                       authorized for its role and stores (``auth``); every change
                                       in the audit log (``audit``)

The numbers are the read functions the CLI, the digest and the admin API use (``board``,
``views``, ``rules``); the changes call the admin API's own functions (``actions``, ``rules``).
"""

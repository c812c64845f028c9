"""The monitoring types of Enterprise Manager: summary reports, repositories, job and task sessions,
discovered agent computers (served by ``api/routes/reports.py``).

Field lists follow the order of real EM 12 JSON replies (docs/COMPATIBILITY.md)
and of the documented XML representations (``VmsOverviewReportFrame``, ``JobStatisticsReportFrame``, ...):
own members first, then the inherited ``Links``/``Href``/``Type``, which EM sends as ``null`` in the
report frames.
"""

from __future__ import annotations

from datetime import datetime

from openflr.api.schema import EmType, attr, items, links, text

# --- /reports/summary/* ------------------------------------------------------------------------------

SUMMARY_REPORT = EmType("SummaryReport", (links(), attr("Href"), attr("Type")))

OVERVIEW_REPORT = EmType(
    "OverviewReportFrame",
    (
        text("BackupServers", int),
        text("ProxyServers", int),
        text("RepositoryServers", int),
        text("RunningJobs", int),
        text("ScheduledJobs", int),
        text("SuccessfulVmLastestStates", int),
        text("WarningVmLastestStates", int),
        text("FailedVmLastestStates", int),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)

VMS_OVERVIEW_REPORT = EmType(
    "VmsOverviewReportFrame",
    (
        text("ProtectedVms", int),
        text("BackedUpVms", int),
        text("ReplicatedVms", int),
        text("RestorePoints", int),
        text("FullBackupPointsSize", int),
        text("IncrementalBackupPointsSize", int),
        text("ReplicaRestorePointsSize", int),
        text("SourceVmsSize", int),
        text("SuccessBackupPercents", int),
        text("ProtectedVmsReportLink"),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)

JOB_STATISTICS_REPORT = EmType(
    "JobStatisticsReportFrame",
    (
        text("RunningJobs", int),
        text("ScheduledJobs", int),
        text("ScheduledBackupJobs", int),
        text("ScheduledReplicaJobs", int),
        text("TotalJobRuns", int),
        text("SuccessfulJobRuns", int),
        text("WarningsJobRuns", int),
        text("FailedJobRuns", int),
        text("MaxJobDuration", int),
        text("MaxBackupJobDuration", int),
        text("MaxReplicaJobDuration", int),
        text("MaxDurationBackupJobName"),
        text("MaxDurationReplicaJobName"),
        text("BackupJobStatusReportLink"),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)

REPOSITORY_PERIOD = EmType(
    "Period",
    (text("Name"), text("Capacity", int), text("FreeSpace", int), text("BackupSize", int)),
    links_first=False,
)
REPOSITORY_REPORT = EmType(
    "RepositoryReportFrame",
    (
        items("Period", REPOSITORY_PERIOD),
        attr("CapacityPlanningReportLink"),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)

PROCESSED_VMS_DAY = EmType(
    "Day",
    (attr("Timestamp", datetime), attr("ReplicatedVms", int), attr("BackupedVms", int)),
    links_first=False,
)
PROCESSED_VMS_REPORT = EmType(
    "ProcessedVmsReportFrame",
    (items("Day", PROCESSED_VMS_DAY), links(), attr("Href"), attr("Type")),
)

# --- /repositories -----------------------------------------------------------------------------------

REPOSITORY = EmType(
    "Repository",
    (
        text("Capacity", int),
        text("FreeSpace", int),
        text("Kind"),
        attr("Name"),
        attr("UID"),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)
REPOSITORIES = EmType("Repositories", (items("Repository", REPOSITORY),))

# --- job sessions -----------------------------------------------------------------------------


def _job_session(name: str) -> EmType:
    return EmType(
        name,
        (
            text("IsRetry", bool),
            text("JobUid"),
            text("JobName"),
            text("JobType"),
            text("CreationTimeUTC", datetime),
            text("EndTimeUTC", datetime),
            text("State"),
            text("Result"),
            text("Progress", int),
            text("FailureMessage"),
            attr("Name"),
            attr("UID"),
            links(),
            attr("Href"),
            attr("Type"),
        ),
    )


BACKUP_JOB_SESSION = _job_session("BackupJobSession")
BACKUP_JOB_SESSIONS = EmType("BackupJobSessions", (items("BackupJobSession", BACKUP_JOB_SESSION),))
REPLICA_JOB_SESSION = _job_session("ReplicaJobSession")
REPLICA_JOB_SESSIONS = EmType("ReplicaJobSessions", (items("ReplicaJobSession", REPLICA_JOB_SESSION),))

# --- /agents/discoveredComputers -------------------------------------------------------------------------

DISCOVERED_COMPUTER = EmType(
    "DiscoveredComputer",
    (
        text("HostStatus"),
        text("AgentVersion"),
        text("AgentStatus"),
        text("OsVersion"),
        text("IpAddress"),
        text("HierarchyObjRef"),
        attr("Name"),
        attr("UID"),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)
DISCOVERED_COMPUTERS = EmType("DiscoveredComputers", (items("DiscoveredComputer", DISCOVERED_COMPUTER),))

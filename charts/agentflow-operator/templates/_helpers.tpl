{{- define "agentflow.name" -}}agentflow-operator{{- end -}}

{{- define "agentflow.fullname" -}}
{{- if contains "agentflow" .Release.Name -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}{{- else -}}{{ printf "%s-agentflow" .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "agentflow.labels" -}}
app.kubernetes.io/name: {{ include "agentflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agentflow
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "agentflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "agentflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "agentflow.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/* The DSN Secret graphs default to: the bundled Postgres's, or the one named in values. */}}
{{- define "agentflow.dsnSecret" -}}
{{- if .Values.bundled.postgres.enabled -}}{{ printf "%s/%s-postgres" .Release.Namespace (include "agentflow.fullname" .) }}{{- else -}}{{ .Values.graphDefaults.dsnSecret }}{{- end -}}
{{- end -}}

{{- define "agentflow.redisUrl" -}}
{{- if .Values.bundled.redis.enabled -}}{{ printf "redis://%s-redis.%s.svc.cluster.local:6379/0" (include "agentflow.fullname" .) .Release.Namespace }}{{- else -}}{{ .Values.graphDefaults.redisUrl }}{{- end -}}
{{- end -}}

{{/* The rules the operator needs on graphs and what they own, and nothing else. Objects are
server-side applied: `patch`, plus `create` when an apply creates. `agentgraphs/finalizers`
lets owned objects block their graph's deletion in garbage collection (`blockOwnerDeletion`),
which OpenShift's OwnerReferencesPermissionEnforcement requires. KEDA's ScaledObjects and
TriggerAuthentications are written for graphs with autoscaling.keda (granting them where KEDA
is not installed is harmless). Secrets are written only
where the operator copies the shared DSN next to graphs; otherwise it only reads those
labelled agentflow.dev/watched=true. */}}
{{- define "agentflow.graphRules" -}}
- apiGroups: ["agentflow.dev"]
  resources: ["agentgraphs"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["agentflow.dev"]
  resources: ["agentgraphs/status"]
  verbs: ["get", "patch"]
- apiGroups: ["agentflow.dev"]
  resources: ["agentgraphs/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  {{- if include "agentflow.dsnSecret" . }}
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
  {{- else }}
  verbs: ["get", "list", "watch"]
  {{- end }}
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects", "triggerauthentications"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

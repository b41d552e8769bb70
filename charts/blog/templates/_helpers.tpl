{{/*
Names and labels: spelled here only. Every template takes them from these.
*/}}

{{- define "blog.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "blog.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A part's name: blog.componentName (dict "ctx" $ "component" "worker") */}}
{{- define "blog.componentName" -}}
{{- printf "%s-%s" (include "blog.fullname" .ctx | trunc 50 | trimSuffix "-") .component }}
{{- end }}

{{- define "blog.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "blog.labels" -}}
helm.sh/chart: {{ include "blog.chart" . }}
{{ include "blog.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aiblog
{{- end }}

{{/* The release's pods and objects, whatever their part. */}}
{{- define "blog.selectorLabels" -}}
app.kubernetes.io/name: {{ include "blog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one part: blog.componentSelectorLabels (dict "ctx" $ "component" "web") */}}
{{- define "blog.componentSelectorLabels" -}}
{{ include "blog.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one part. */}}
{{- define "blog.componentLabels" -}}
{{ include "blog.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The Prometheus job of the blog's metrics. The alert rules (rules/aiblog.rules.yml)
select up{job="aiblog"}; the ServiceMonitor and PodMonitor take the job from
this label (their jobLabel), so it does not depend on the release name.
*/}}
{{- define "blog.metricsJobLabel" -}}aiblog.dev/metrics-job{{- end }}
{{- define "blog.metricsJob" -}}aiblog{{- end }}
{{- define "blog.workerMetricsJob" -}}aiblog-worker{{- end }}

{{- define "blog.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "blog.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository@digest when image.digest is set (the digest names the bytes; the tag is then only a label). */}}
{{- define "blog.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
TRUSTED_HOSTS: the Services' names (probes, `helm test`, LoadTests), the Ingress and
HTTPRoute hostnames (a wildcard becomes Werkzeug's ".suffix") and web.trustedHosts.
*/}}
{{- define "blog.trustedHosts" -}}
{{- $hosts := list }}
{{- range $pool := include "blog.servingPools" . | fromYamlArray }}
{{- $service := $pool.name }}
{{- $hosts = concat $hosts (list $service (printf "%s.%s" $service $.Release.Namespace) (printf "%s.%s.svc" $service $.Release.Namespace) (printf "%s.%s.svc.%s" $service $.Release.Namespace $.Values.clusterDomain)) }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- $hosts = append $hosts (.host | replace "*." ".") }}
{{- end }}
{{- end }}
{{- if .Values.httpRoute.enabled }}
{{- range .Values.httpRoute.hostnames }}
{{- $hosts = append $hosts (. | replace "*." ".") }}
{{- end }}
{{- end }}
{{- join "," (concat $hosts .Values.web.trustedHosts | uniq) }}
{{- end }}

{{/* The Host the kubelet's probes send: the Service's name (trusted), not the pod's address. */}}
{{- define "blog.probeHeaders" -}}
httpHeaders:
  - name: Host
    value: {{ include "blog.fullname" . }}
{{- end }}

{{/* gunicorn workers of a pool's part (.Values.web, or the AI pool's): its webConcurrency, else one
per whole CPU of its limit (gevent: one core each), at least 1. */}}
{{- define "blog.webConcurrency" -}}
{{- if .webConcurrency }}
{{- .webConcurrency }}
{{- else }}
{{- $cpu := toString .resources.limits.cpu }}
{{- if hasSuffix "m" $cpu }}
{{- max 1 (div (trimSuffix "m" $cpu | atoi) 1000) }}
{{- else }}
{{- max 1 (float64 $cpu | floor | int) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The gunicorn pools that serve HTTP, as a YAML list: `web`, and with aiPool.enabled
the AI pool, which the Ingress and HTTPRoute send aiPool.paths. Each has its
component, name, replicaCount, autoscaling, part (web's values, and for the AI
pool web's values with aiPool's resources and, when set, its nodeSelector,
tolerations and affinity instead of web's) and env: what its server container
sets over the ConfigMap, which holds web's settings (the AI pool's own gunicorn
worker count, one per whole CPU of its limit).
*/}}
{{- define "blog.servingPools" -}}
- component: web
  name: {{ include "blog.fullname" . }}
  replicaCount: {{ .Values.replicaCount }}
  autoscaling: {{ toJson .Values.autoscaling }}
  part: {{ toJson .Values.web }}
  env: []
{{- if .Values.aiPool.enabled }}
- component: ai
  name: {{ include "blog.componentName" (dict "ctx" . "component" "ai") }}
  replicaCount: {{ .Values.aiPool.replicaCount }}
  autoscaling: {{ toJson .Values.aiPool.autoscaling }}
  {{- $part := deepCopy .Values.web }}
  {{- $_ := set $part "webConcurrency" 0 }}
  {{- $_ = set $part "resources" .Values.aiPool.resources }}
  {{- range $key := list "nodeSelector" "tolerations" "affinity" }}
  {{- with index $.Values.aiPool $key }}
  {{- $_ = set $part $key . }}
  {{- end }}
  {{- end }}
  part: {{ toJson $part }}
  env: [{name: WEB_CONCURRENCY, value: {{ include "blog.webConcurrency" $part | quote }}}]
{{- end }}
{{- end }}

{{/* The pods of every serving pool (blog.servingPools), as a LabelSelector. */}}
{{- define "blog.servingSelector" -}}
matchLabels:
  {{- include "blog.selectorLabels" . | nindent 2 }}
matchExpressions:
  - key: app.kubernetes.io/component
    operator: In
    values: {{ ternary (list "web" "ai") (list "web") .Values.aiPool.enabled | toJson }}
{{- end }}

{{/* --- Where the database, Redis and the LLM are ------------------------- */}}

{{- define "blog.database.host" -}}
{{- if .Values.postgresql.enabled }}{{ include "blog.componentName" (dict "ctx" . "component" "postgresql") }}{{ else }}{{ .Values.externalDatabase.host }}{{ end }}
{{- end }}
{{- define "blog.database.port" -}}
{{- if .Values.postgresql.enabled }}{{ .Values.postgresql.port }}{{ else }}{{ .Values.externalDatabase.port }}{{ end }}
{{- end }}
{{- define "blog.database.name" -}}
{{- if .Values.postgresql.enabled }}{{ .Values.postgresql.auth.database }}{{ else }}{{ .Values.externalDatabase.database }}{{ end }}
{{- end }}
{{- define "blog.database.user" -}}
{{- if .Values.postgresql.enabled }}{{ .Values.postgresql.auth.username }}{{ else }}{{ .Values.externalDatabase.user }}{{ end }}
{{- end }}
{{- define "blog.database.secretName" -}}
{{- if .Values.postgresql.enabled }}{{ default (include "blog.componentName" (dict "ctx" . "component" "postgresql")) .Values.postgresql.auth.existingSecret }}{{ else }}{{ .Values.externalDatabase.existingSecret }}{{ end }}
{{- end }}
{{- define "blog.database.secretKey" -}}
{{- if .Values.postgresql.enabled }}{{ .Values.postgresql.auth.existingSecretPasswordKey }}{{ else }}{{ .Values.externalDatabase.existingSecretPasswordKey }}{{ end }}
{{- end }}
{{/* No password in the URL: DATABASE_PASSWORD is its own setting (config.py quotes it in). */}}
{{- define "blog.database.url" -}}
{{- printf "postgresql://%s@%s:%v/%s" (include "blog.database.user" .) (include "blog.database.host" .) (include "blog.database.port" .) (include "blog.database.name" .) }}
{{- end }}

{{- define "blog.redis.enabled" -}}
{{- if or .Values.redis.enabled .Values.externalRedis.host }}true{{ end }}
{{- end }}
{{- define "blog.redis.host" -}}
{{- if .Values.redis.enabled }}{{ include "blog.componentName" (dict "ctx" . "component" "redis") }}{{ else }}{{ .Values.externalRedis.host }}{{ end }}
{{- end }}
{{- define "blog.redis.port" -}}
{{- if .Values.redis.enabled }}{{ .Values.redis.port }}{{ else }}{{ .Values.externalRedis.port }}{{ end }}
{{- end }}
{{- define "blog.redis.secretName" -}}
{{- if .Values.redis.enabled }}{{ default (include "blog.componentName" (dict "ctx" . "component" "redis")) .Values.redis.auth.existingSecret }}{{ else }}{{ .Values.externalRedis.existingSecret }}{{ end }}
{{- end }}
{{- define "blog.redis.secretKey" -}}
{{- if .Values.redis.enabled }}{{ .Values.redis.auth.existingSecretPasswordKey }}{{ else }}{{ .Values.externalRedis.existingSecretPasswordKey }}{{ end }}
{{- end }}
{{- define "blog.redis.url" -}}
{{- if include "blog.redis.enabled" . }}
{{- printf "redis://%s:%v/%v" (include "blog.redis.host" .) (include "blog.redis.port" .) (ternary 0 .Values.externalRedis.database .Values.redis.enabled) }}
{{- end }}
{{- end }}

{{- define "blog.llm.api" -}}
{{- if eq .Values.llm.mode "ollama" }}ollama{{ else if eq .Values.llm.mode "external" }}{{ .Values.llm.external.api }}{{ else }}sim{{ end }}
{{- end }}
{{- define "blog.llm.baseUrl" -}}
{{- if eq .Values.llm.mode "ollama" }}
{{- printf "http://%s:%v" (include "blog.componentName" (dict "ctx" . "component" "ollama")) .Values.ollama.port }}
{{- else }}
{{- .Values.llm.external.baseUrl }}
{{- end }}
{{- end }}
{{- define "blog.llm.model" -}}
{{- if eq .Values.llm.mode "ollama" }}{{ .Values.ollama.model }}{{ else }}{{ .Values.llm.external.model }}{{ end }}
{{- end }}

{{/*
A secret value generated once: the value already in the cluster's Secret when
there is one (upgrades keep it), otherwise a random one. Offline renders
(helm template, Argo CD) see no cluster, so they always get a random value:
generateSecrets false is the mode for them (README: GitOps).
Usage: blog.generatedSecret (dict "ctx" $ "name" secretName "key" key "length" 32)
*/}}
{{- define "blog.generatedSecret" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .name }}
{{- if and $existing $existing.data (hasKey $existing.data .key) }}
{{- index $existing.data .key }}
{{- else }}
{{- randAlphaNum (int .length) | b64enc }}
{{- end }}
{{- end }}

{{/* A generated Secret, kept by `helm uninstall` so a reinstall adopts it (same release name and namespace). */}}
{{- define "blog.generatedSecretObject" -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .name }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- if .component }}
    {{- include "blog.componentLabels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
    {{- else }}
    {{- include "blog.labels" .ctx | nindent 4 }}
    {{- end }}
  annotations:
    helm.sh/resource-policy: keep
type: Opaque
data:
  {{ .key }}: {{ include "blog.generatedSecret" . }}
{{- end }}

{{/*
What checksum/secret hashes: the Secrets and keys the pods read and, for those the
chart does not generate, their data when `lookup` sees them (a rotated existingSecret
rolls the pods at the next upgrade). Generated values stay out: random offline and
never changed once made, they must not roll pods on every render.
*/}}
{{- define "blog.secretChecksum" -}}
{{- $refs := list (list (default (include "blog.fullname" .) .Values.secretKey.existingSecret) .Values.secretKey.existingSecretKey (and .Values.generateSecrets (not .Values.secretKey.existingSecret))) }}
{{- if include "blog.database.secretName" . }}
{{- $refs = append $refs (list (include "blog.database.secretName" .) (include "blog.database.secretKey" .) (and .Values.generateSecrets .Values.postgresql.enabled (not .Values.postgresql.auth.existingSecret))) }}
{{- end }}
{{- if and (include "blog.redis.enabled" .) (include "blog.redis.secretName" .) }}
{{- $refs = append $refs (list (include "blog.redis.secretName" .) (include "blog.redis.secretKey" .) (and .Values.generateSecrets .Values.redis.enabled (not .Values.redis.auth.existingSecret))) }}
{{- end }}
{{- $parts := list }}
{{- range $refs }}
{{- $value := "" }}
{{- if not (index . 2) }}
{{- $found := lookup "v1" "Secret" $.Release.Namespace (index . 0) }}
{{- $value = dig "data" (index . 1) "" $found }}
{{- end }}
{{- $parts = append $parts (printf "%s/%s=%s" (index . 0) (index . 1) $value) }}
{{- end }}
{{- join "\n" $parts | sha256sum }}
{{- end }}

{{/* Container-level security for every container of this chart. */}}
{{- define "blog.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The blog's environment: plain settings from the ConfigMap, secrets by reference, the part's extras,
then .own (a pod's own settings over the ConfigMap's, e.g. the AI pool's WEB_CONCURRENCY).
Usage: blog.env (dict "ctx" $ "part" .Values.web ["own" list]) */}}
{{- define "blog.env" -}}
{{- $ctx := .ctx }}
envFrom:
  - configMapRef:
      name: {{ include "blog.fullname" $ctx }}
  {{- with .part.extraEnvFrom }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
env:
  - name: SECRET_KEY
    valueFrom:
      secretKeyRef:
        name: {{ default (include "blog.fullname" $ctx) $ctx.Values.secretKey.existingSecret }}
        key: {{ $ctx.Values.secretKey.existingSecretKey }}
  {{- if include "blog.database.secretName" $ctx }}
  - name: DATABASE_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ include "blog.database.secretName" $ctx }}
        key: {{ include "blog.database.secretKey" $ctx }}
  {{- end }}
  {{- if and (include "blog.redis.enabled" $ctx) (include "blog.redis.secretName" $ctx) }}
  - name: REDIS_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ include "blog.redis.secretName" $ctx }}
        key: {{ include "blog.redis.secretKey" $ctx }}
  {{- end }}
  {{- with .part.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with .own }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The blog's own pods: its image's user (securityContext), the part's podSecurityContext over it. */}}
{{- define "blog.podSecurityContext" -}}
{{- include "blog.podSecurityContextFor" (dict "user" .ctx.Values.securityContext.runAsUser "group" .ctx.Values.securityContext.runAsGroup "part" .part) }}
{{- end }}

{{/* Where the blog and worker may connect: DNS, Postgres, Redis, the LLM. */}}
{{- define "blog.networkPolicy.egress" -}}
{{- $np := .Values.networkPolicy }}
- to:
    - namespaceSelector:
        {{- toYaml $np.dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml $np.dns.podSelector | nindent 8 }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- if .Values.postgresql.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "blog.componentSelectorLabels" (dict "ctx" . "component" "postgresql") | nindent 10 }}
  ports:
    - {port: postgresql, protocol: TCP}
{{- else }}
- to:
    - ipBlock: {cidr: {{ $np.externalCIDR }}}
  ports:
    - {port: {{ .Values.externalDatabase.port }}, protocol: TCP}
{{- end }}
{{- if .Values.redis.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "blog.componentSelectorLabels" (dict "ctx" . "component" "redis") | nindent 10 }}
  ports:
    - {port: redis, protocol: TCP}
{{- else if .Values.externalRedis.host }}
- to:
    - ipBlock: {cidr: {{ $np.externalCIDR }}}
  ports:
    - {port: {{ .Values.externalRedis.port }}, protocol: TCP}
{{- end }}
{{- if eq .Values.llm.mode "ollama" }}
- to:
    - podSelector:
        matchLabels:
          {{- include "blog.componentSelectorLabels" (dict "ctx" . "component" "ollama") | nindent 10 }}
  ports:
    - {port: ollama, protocol: TCP}
{{- else if eq .Values.llm.mode "external" }}
{{- $url := urlParse .Values.llm.external.baseUrl }}
{{- $hostPort := splitList ":" $url.host }}
- to:
    - ipBlock: {cidr: {{ $np.externalCIDR }}}
  ports:
    - {port: {{ if gt (len $hostPort) 1 }}{{ last $hostPort }}{{ else if eq $url.scheme "https" }}443{{ else }}80{{ end }}, protocol: TCP}
{{- end }}
{{- end }}

{{- define "blog.ollama.env" -}}
- name: OLLAMA_MODEL
  value: {{ .Values.ollama.model | quote }}
- name: OLLAMA_MODELS
  value: /models
- name: HOME
  value: /home/ollama
{{- end }}

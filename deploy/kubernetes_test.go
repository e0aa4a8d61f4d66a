package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/jetwatch/jetwatch/auth"
)

// The parts of Kubernetes objects these tests read; the rest is ignored.
type (
	object struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
		Spec       spec              `yaml:"spec"`
	}
	spec struct {
		// A Deployment's selector has matchLabels, a Service's is the labels.
		Selector                 yaml.Node `yaml:"selector"`
		PublishNotReadyAddresses bool      `yaml:"publishNotReadyAddresses"`
		Template                 struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Name       string    `yaml:"name"`
			Port       int       `yaml:"port"`
			TargetPort yaml.Node `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	podSpec struct {
		SecurityContext struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
			RunAsUser    int   `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []struct {
			Name   string `yaml:"name"`
			Secret *struct {
				SecretName string `yaml:"secretName"`
				Items      []struct {
					Key  string `yaml:"key"`
					Path string `yaml:"path"`
				} `yaml:"items"`
			} `yaml:"secret"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
			PersistentVolumeClaim *struct {
				ClaimName string `yaml:"claimName"`
			} `yaml:"persistentVolumeClaim"`
			EmptyDir *struct{} `yaml:"emptyDir"`
		} `yaml:"volumes"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path   string    `yaml:"path"`
			Port   yaml.Node `yaml:"port"`
			Scheme string    `yaml:"scheme"`
		} `yaml:"httpGet"`
	}
)

// manifest is deploy/kubernetes: the objects by kind and name.
type manifest map[string]object

func (m manifest) get(t *testing.T, kind, name string) object {
	t.Helper()
	o, ok := m[kind+"/"+name]
	require.True(t, ok, "deploy/kubernetes has no %s %s", kind, name)
	return o
}

func loadManifest(t *testing.T) manifest {
	t.Helper()
	m := manifest{}
	for _, file := range []string{"kubernetes/jetwatch.yaml", "kubernetes/secret.example.yaml"} {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, file)
			require.NotEmpty(t, o.Kind, "%s: a document without kind", file)
			key := o.Kind + "/" + o.Metadata.Name
			require.NotContains(t, m, key, "%s: %s twice", file, key)
			m[key] = o
		}
	}
	return m
}

// jetwatchContainer is the Deployment's one container.
func jetwatchContainer(t *testing.T, m manifest) (podSpec, container) {
	t.Helper()
	pod := m.get(t, "Deployment", "jetwatch").Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	return pod, pod.Containers[0]
}

// resolvePort turns a port given by name or number into the container port.
func resolvePort(t *testing.T, c container, port yaml.Node) int {
	t.Helper()
	if n, err := strconv.Atoi(port.Value); err == nil {
		return n
	}
	for _, p := range c.Ports {
		if p.Name == port.Value {
			return p.ContainerPort
		}
	}
	require.Failf(t, "unknown port", "port %q is not a port of container %s", port.Value, c.Name)
	return 0
}

func envValue(c container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func TestKubernetesProbesAndServiceUseTheListenPort(t *testing.T) {
	t.Parallel()
	m := loadManifest(t)
	_, c := jetwatchContainer(t, m)
	listen, ok := envValue(c, "JETWATCH_LISTEN")
	require.True(t, ok, "the container sets JETWATCH_LISTEN")
	host, port, _ := strings.Cut(listen, ":")
	require.Equal(t, "0.0.0.0", host)
	require.Len(t, c.Ports, 1)
	require.Equal(t, port, strconv.Itoa(c.Ports[0].ContainerPort), "the container port is the listen port")

	require.NotNil(t, c.LivenessProbe)
	require.NotNil(t, c.LivenessProbe.HTTPGet, "liveness is an HTTP probe")
	require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	require.Equal(t, c.Ports[0].ContainerPort, resolvePort(t, c, c.LivenessProbe.HTTPGet.Port))
	require.NotNil(t, c.ReadinessProbe)
	require.NotNil(t, c.ReadinessProbe.HTTPGet, "readiness is an HTTP probe")
	require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	require.Equal(t, c.Ports[0].ContainerPort, resolvePort(t, c, c.ReadinessProbe.HTTPGet.Port))
	_, tls := envValue(c, "JETWATCH_TLS_CERT")
	for _, p := range []*probe{c.LivenessProbe, c.ReadinessProbe} {
		require.Equal(t, tls, p.HTTPGet.Scheme == "HTTPS", "probes speak HTTPS exactly when jetwatch serves TLS")
	}

	dep := m.get(t, "Deployment", "jetwatch")
	var depSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	require.NoError(t, dep.Spec.Selector.Decode(&depSelector))
	require.NotEmpty(t, depSelector.MatchLabels)
	require.Equal(t, depSelector.MatchLabels, subset(dep.Spec.Template.Metadata.Labels, depSelector.MatchLabels), "the Deployment selects its pods")
	svc := m.get(t, "Service", "jetwatch")
	var svcSelector map[string]string
	require.NoError(t, svc.Spec.Selector.Decode(&svcSelector))
	require.NotEmpty(t, svcSelector)
	require.Equal(t, svcSelector, subset(dep.Spec.Template.Metadata.Labels, svcSelector), "the Service selects jetwatch's pods")
	require.True(t, svc.Spec.PublishNotReadyAddresses, "the dashboard stays reachable while /readyz fails because NATS is down")
	require.Len(t, svc.Spec.Ports, 1)
	require.Equal(t, c.Ports[0].ContainerPort, resolvePort(t, c, svc.Spec.Ports[0].TargetPort), "the Service targets the listen port")
}

// subset is the entries of labels whose keys are in want.
func subset(labels, want map[string]string) map[string]string {
	out := map[string]string{}
	for k := range want {
		if v, ok := labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

func TestKubernetesMountsMatchTheSettings(t *testing.T) {
	t.Parallel()
	m := loadManifest(t)
	pod, c := jetwatchContainer(t, m)
	secret := m.get(t, "Secret", "jetwatch")

	// Each path setting names a file in a mounted volume that has it.
	for env, kind := range map[string]string{
		"NATS_CREDS":     "secret",
		"JETWATCH_USERS": "secret",
		"JETWATCH_RULES": "configMap",
		"JETWATCH_DATA":  "persistentVolumeClaim",
	} {
		value, ok := envValue(c, env)
		require.True(t, ok, "the container sets %s", env)
		require.True(t, path.IsAbs(value), "%s=%s", env, value)
		found := false
		for _, vm := range c.VolumeMounts {
			rel, inside := strings.CutPrefix(value, vm.MountPath)
			if !inside || (rel != "" && !strings.HasPrefix(rel, "/")) {
				continue
			}
			rel = strings.TrimPrefix(rel, "/")
			for _, v := range pod.Volumes {
				if v.Name != vm.Name {
					continue
				}
				found = true
				switch kind {
				case "secret":
					require.NotNil(t, v.Secret, "%s=%s is in volume %s, not a Secret", env, value, v.Name)
					require.Equal(t, secret.Metadata.Name, v.Secret.SecretName)
					require.True(t, vm.ReadOnly)
					key := rel
					if len(v.Secret.Items) > 0 {
						key = ""
						for _, it := range v.Secret.Items {
							if it.Path == rel {
								key = it.Key
							}
						}
					}
					require.Contains(t, secret.StringData, key, "%s=%s: the Secret has no key for it", env, value)
				case "configMap":
					require.NotNil(t, v.ConfigMap, "%s=%s is in volume %s, not a ConfigMap", env, value, v.Name)
					require.Contains(t, m.get(t, "ConfigMap", v.ConfigMap.Name).Data, rel, "%s=%s: the ConfigMap has no key %s", env, value, rel)
					require.True(t, vm.ReadOnly)
				case "persistentVolumeClaim":
					require.NotNil(t, v.PersistentVolumeClaim, "%s=%s is in volume %s, not a claim", env, value, v.Name)
					m.get(t, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName)
					require.Empty(t, rel, "the data directory is the volume")
					require.False(t, vm.ReadOnly, "jetwatch writes its index there")
				}
			}
		}
		require.True(t, found, "%s=%s is on no mounted volume of the pod", env, value)
	}

	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			require.Equal(t, secret.Metadata.Name, e.ValueFrom.SecretKeyRef.Name, e.Name)
			require.Contains(t, secret.StringData, e.ValueFrom.SecretKeyRef.Key, "%s: the Secret has no key %s", e.Name, e.ValueFrom.SecretKeyRef.Key)
		}
	}
	_, sessionKey := envValue(c, "JETWATCH_SESSION_KEY")
	require.True(t, sessionKey, "the session key comes from the Secret")
}

func TestKubernetesRulesReferToWhatExists(t *testing.T) {
	t.Parallel()
	m := loadManifest(t)
	_, c := jetwatchContainer(t, m)
	var rules struct {
		Receivers []struct {
			Name      string `yaml:"name"`
			URL       string `yaml:"url"`
			SecretEnv string `yaml:"secret_env"`
		} `yaml:"receivers"`
		Rules []struct {
			Name      string   `yaml:"name"`
			Receivers []string `yaml:"receivers"`
		} `yaml:"rules"`
	}
	rulesFile, _ := envValue(c, "JETWATCH_RULES")
	data := m.get(t, "ConfigMap", "jetwatch-rules").Data[path.Base(rulesFile)]
	require.NoError(t, yaml.Unmarshal([]byte(data), &rules))
	require.NotEmpty(t, rules.Rules)
	receivers := map[string]bool{}
	for _, r := range rules.Receivers {
		receivers[r.Name] = true
		if r.SecretEnv != "" {
			_, ok := envValue(c, r.SecretEnv)
			require.True(t, ok, "receiver %s reads %s, which the container does not set", r.Name, r.SecretEnv)
		}
	}
	for _, r := range rules.Rules {
		require.NotEmpty(t, r.Receivers, "rule %s", r.Name)
		for _, name := range r.Receivers {
			require.True(t, receivers[name], "rule %s sends to unknown receiver %s", r.Name, name)
		}
	}
}

func TestKubernetesRunsLockedDown(t *testing.T) {
	t.Parallel()
	m := loadManifest(t)
	pod, c := jetwatchContainer(t, m)
	runtime := parseDockerfile(t)[1]
	uid, _, _ := strings.Cut(runtime.last(t, "USER").args, ":")
	require.Equal(t, uid, strconv.Itoa(pod.SecurityContext.RunAsUser), "the pod runs as the image's user")
	require.NotNil(t, pod.SecurityContext.RunAsNonRoot)
	require.True(t, *pod.SecurityContext.RunAsNonRoot)
	sc := c.SecurityContext
	for name, b := range map[string]*bool{"runAsNonRoot": sc.RunAsNonRoot, "readOnlyRootFilesystem": sc.ReadOnlyRootFilesystem} {
		require.NotNil(t, b, name)
		require.True(t, *b, name)
	}
	require.NotNil(t, sc.AllowPrivilegeEscalation)
	require.False(t, *sc.AllowPrivilegeEscalation)
	require.Equal(t, []string{"ALL"}, sc.Capabilities.Drop)
	for _, r := range []string{"cpu", "memory"} {
		require.Contains(t, c.Resources.Requests, r)
	}
	require.Contains(t, c.Resources.Limits, "memory")

	// With a read-only root, SQLite's temporary files need a writable /tmp.
	tmp := false
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == "/tmp" && !vm.ReadOnly {
			for _, v := range pod.Volumes {
				tmp = tmp || (v.Name == vm.Name && v.EmptyDir != nil)
			}
		}
	}
	require.True(t, tmp, "an emptyDir on /tmp")
}

// plannedSettings are settings the manifest uses before the binary has
// them (setting -> flag). None now: every one is checked against serve.
var plannedSettings = map[string]string{}

var commentedEnv = regexp.MustCompile(`(?m)^\s*#\s*- name: ([A-Z][A-Z0-9_]*)$`)

// checkManifestSettings checks every variable and flag the container sets
// against settings (env -> flag) of the built binary's serve --help.
func checkManifestSettings(t *testing.T, settings map[string]string) {
	m := loadManifest(t)
	_, c := jetwatchContainer(t, m)
	var rules struct {
		Receivers []struct {
			SecretEnv string `yaml:"secret_env"`
		} `yaml:"receivers"`
	}
	for _, data := range m.get(t, "ConfigMap", "jetwatch-rules").Data {
		require.NoError(t, yaml.Unmarshal([]byte(data), &rules))
	}
	readByRules := map[string]bool{}
	for _, r := range rules.Receivers {
		readByRules[r.SecretEnv] = true
	}
	names := map[string]bool{}
	for _, e := range c.Env {
		names[e.Name] = true
	}
	// The examples commented out are for copying: they must work too.
	b, err := os.ReadFile("kubernetes/jetwatch.yaml")
	require.NoError(t, err)
	for _, m := range commentedEnv.FindAllStringSubmatch(string(b), -1) {
		names[m[1]] = true
	}
	for name := range names {
		switch {
		case settings[name] != "":
		case strings.HasPrefix(name, "OTEL_"): // OpenTelemetry's own variables
		case name == "GOMEMLIMIT": // read by the Go runtime
		case readByRules[name]:
		default:
			flag, planned := plannedSettings[name]
			require.True(t, planned, "the manifest sets %s, which jetwatch serve does not read", name)
			t.Logf("%s (flag %q) is planned and not in this binary yet", name, flag)
		}
	}
	flags := map[string]bool{}
	for _, f := range settings {
		flags[f] = true
	}
	for _, f := range plannedSettings {
		flags[f] = flags[f] || f != ""
	}
	for _, a := range c.Args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") {
			require.True(t, flags[name], "the container passes %s, which jetwatch serve does not take", a)
		}
	}
}

// An example Secret applied as it is must not start a jetwatch anyone can
// sign in to with published values.
func TestExampleSecretPlaceholdersAreRefused(t *testing.T) {
	t.Parallel()
	secret := loadManifest(t).get(t, "Secret", "jetwatch")
	_, err := auth.NewSessions(secret.StringData["session-key"], time.Hour)
	require.Error(t, err, "the placeholder session key")
	users := filepath.Join(t.TempDir(), "users")
	require.NoError(t, os.WriteFile(users, []byte(secret.StringData["users"]), 0o600))
	_, err = auth.OpenUsers(users)
	require.Error(t, err, "the placeholder users file")
}

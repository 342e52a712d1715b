//! Rendering: environment + job specs + templates -> the ordered manifest set.

pub mod templates;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::env::model::{Environment, LimitRange, Quota, SecretsMode, TargetKind, TenantHpo};
use crate::env::secret_template::ValueTemplate;
use crate::env::versions::{optuna_server, trainer_api};
use crate::env::LoadedEnv;
use crate::hpo::Batch;
use crate::jobs::spec::Framework;
use crate::jobs::Job;
use crate::manifest::{self, Manifest, Origin};
use crate::yaml;
pub use templates::{TemplateError, Templates};

/// A problem turning templates into objects.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The template itself failed.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The template rendered text that is not YAML.
    #[error("{file}: rendered invalid YAML ({message}) at output line {line}: {text:?}")]
    Yaml {
        /// Template file.
        file: String,
        /// Parser message.
        message: String,
        /// Line of the rendered output.
        line: usize,
        /// That line's text.
        text: String,
    },
    /// A rendered document is not a Kubernetes object.
    #[error("{file}: rendered document {index} is not a Kubernetes object: {what}")]
    NotAnObject {
        /// Template file.
        file: String,
        /// 1-based document number in the template's output.
        index: usize,
        /// What is missing.
        what: String,
    },
    /// Two objects with the same identity.
    #[error("{id} is rendered twice: by {first} and by {second}")]
    Duplicate {
        /// `kind/namespace/name`.
        id: String,
        /// First origin.
        first: String,
        /// Second origin.
        second: String,
    },
}

/// Why one trial batch file did not render ([`render_batch`]).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Problems in the spec file, at file:line:column.
    #[error("{0}")]
    Invalid(#[from] crate::diag::Diagnostics),
    /// The batch templates failed.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// A tenant with the defaults filled in, as templates see it.
#[derive(Debug, Serialize)]
struct TenantView<'a> {
    name: &'a str,
    irsa_role_arn: Option<&'a str>,
    quota: Quota,
    limit_range: &'a LimitRange,
    allow_from_namespaces: &'a [String],
    /// Script file name -> content for this tenant's `<tenant>-train-script` ConfigMap.
    scripts: BTreeMap<&'a str, &'a str>,
    /// Its HPO workspace, when it and `components.hpo` are enabled.
    hpo: Option<&'a TenantHpo>,
}

/// Everything a template can use.
#[derive(Debug, Serialize)]
struct Context<'a> {
    env: &'a Environment,
    target: TargetKind,
    platform_namespace: &'a str,
    trainer_api: &'static str,
    tenants: Vec<TenantView<'a>>,
    /// Kubeflow TrainJobs (framework pytorch or tensorflow).
    trainjobs: Vec<&'a Job>,
    /// Resumable custom trainer Jobs.
    custom_jobs: Vec<&'a Job>,
    /// pip requirements of the HPO storage server and dashboard, from the version pins.
    hpo_packages: Vec<String>,
    /// Optuna trial batches, checked and with their defaults filled in.
    hpo_batches: &'a [Batch],
    /// The Secrets of `aws.secrets` (their names and sources, never values).
    secrets: Vec<SecretView<'a>>,
}

/// A Secret from Secrets Manager, as templates see it.
#[derive(Debug, Serialize)]
struct SecretView<'a> {
    name: &'a str,
    from: &'a str,
    /// Key -> its value template in the External Secrets Operator's Go template form.
    go_templates: BTreeMap<&'a str, String>,
}

/// A component: its template directory and whether the environment enables it.
struct Component {
    name: &'static str,
    enabled: fn(&Environment, &Specs) -> bool,
}

/// The spec files an environment's render includes besides the environment itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Specs<'a> {
    /// Job specs (`components.trainer.jobs_dir`).
    pub jobs: &'a [Job],
    /// Trial batch specs (`components.hpo.batches_dir`).
    pub batches: &'a [Batch],
}

const COMPONENTS: &[Component] = &[
    Component { name: "platform", enabled: |_, _| true },
    Component { name: "tenants", enabled: |e, _| e.components.tenants.enabled },
    Component { name: "trainer", enabled: |e, _| e.components.trainer.enabled },
    Component {
        name: "custom-jobs",
        enabled: |e, specs| {
            e.components.custom_jobs.enabled
                && specs.jobs.iter().any(|j| j.spec.framework == Framework::Custom)
        },
    },
    Component { name: "gpu", enabled: |e, _| e.components.gpu.enabled },
    Component { name: "mlflow", enabled: |e, _| e.components.mlflow.enabled },
    Component { name: "postgres", enabled: |e, _| e.components.postgres.enabled },
    Component { name: "minio", enabled: |e, _| e.components.minio.enabled },
    Component { name: "ray", enabled: |e, _| e.components.ray.enabled },
    Component { name: "hpo", enabled: |e, _| e.components.hpo.enabled },
    Component {
        name: "secrets",
        enabled: |e, _| e.components.secrets.mode != SecretsMode::None && !e.managed_secrets().is_empty(),
    },
    // After the workspace: trial pods need its storage server and volumes.
    Component {
        name: HPO_BATCHES,
        enabled: |e, specs| e.components.hpo.enabled && !specs.batches.is_empty(),
    },
];

/// The component of trial batch objects.
const HPO_BATCHES: &str = "hpo-batches";

/// Names of all components, in render order.
pub fn component_names() -> impl Iterator<Item = &'static str> {
    COMPONENTS.iter().map(|c| c.name)
}

/// Renders every enabled component; add-on objects are passed in already loaded.
/// The result is labelled, checked for duplicates and sorted in apply order.
pub fn render(
    loaded: &LoadedEnv,
    specs: Specs,
    templates: &Templates,
    addons: Vec<(String, Vec<serde_json::Value>)>,
) -> Result<Vec<Manifest>, RenderError> {
    let env = &loaded.env;
    let ctx = minijinja::Value::from(minijinja::value::Serde(&build_context(env, specs)));
    let mut set = Vec::new();
    for comp in COMPONENTS {
        if (comp.enabled)(env, &specs) {
            render_component(env, comp.name, templates, &ctx, &mut set)?;
        }
    }
    for (addon, objs) in addons {
        let labels = BTreeMap::from([
            ("app.kubernetes.io/part-of", "trainstack".to_string()),
            ("trainstack.io/addon", addon.clone()),
            ("trainstack.io/environment", env.name.clone()),
        ]);
        for obj in objs {
            let mut m = Manifest { obj, origin: Origin::Addon { name: addon.clone() } };
            m.add_labels(&labels);
            set.push(m);
        }
    }
    check_duplicates(&set)?;
    manifest::sort(&mut set);
    Ok(set)
}

/// Checks ONE trial batch spec file against a loaded environment and renders its objects, for
/// `hpo run`: the batch (name, tenant, study, Jobs) and its ConfigMap, pull Secret and Jobs,
/// labelled as in a full render, in apply order. Problems in the file are reported as
/// diagnostics with file:line:column, like `render` reports them.
pub fn render_batch(
    loaded: &LoadedEnv,
    path: &std::path::Path,
    templates: &Templates,
) -> Result<(Batch, Vec<Manifest>), BatchError> {
    let mut batches = crate::hpo::load_files(loaded, &[path.to_path_buf()])?;
    let specs = Specs { jobs: &[], batches: &batches };
    let ctx = minijinja::Value::from(minijinja::value::Serde(&build_context(&loaded.env, specs)));
    let mut set = Vec::new();
    render_component(&loaded.env, HPO_BATCHES, templates, &ctx, &mut set)?;
    manifest::sort(&mut set);
    Ok((batches.remove(0), set))
}

fn render_component(
    env: &Environment,
    component: &'static str,
    templates: &Templates,
    ctx: &minijinja::Value,
    set: &mut Vec<Manifest>,
) -> Result<(), RenderError> {
    let mut labels = standard_labels(env, component);
    if component == HPO_BATCHES {
        labels.insert("app.kubernetes.io/component", "hpo".into());
    }
    for name in templates.component_templates(component) {
        let text = templates.render(name, ctx)?;
        let file = templates.file_of(name);
        for (i, obj) in parse_output(&text, &file)?.into_iter().enumerate() {
            check_object(&obj, &file, i + 1)?;
            let mut m = Manifest {
                obj,
                origin: Origin::Template { component: component.into(), template: name.into() },
            };
            m.add_labels(&labels);
            set.push(m);
        }
    }
    Ok(())
}

fn build_context<'a>(env: &'a Environment, specs: Specs<'a>) -> Context<'a> {
    let jobs = specs.jobs;
    let t = &env.components.tenants;
    let tenants = t
        .list
        .iter()
        .map(|tenant| TenantView {
            name: &tenant.name,
            irsa_role_arn: tenant.irsa_role_arn.as_deref(),
            quota: t.quota_of(tenant),
            limit_range: tenant.limit_range.as_ref().unwrap_or(&t.defaults.limit_range),
            allow_from_namespaces: tenant
                .allow_from_namespaces
                .as_deref()
                .unwrap_or(&t.defaults.allow_from_namespaces),
            scripts: jobs
                .iter()
                .filter(|j| j.spec.tenant == tenant.name && j.spec.framework != Framework::Custom)
                .flat_map(|j| j.script_contents.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .collect(),
            hpo: (env.components.hpo.enabled && tenant.hpo.enabled).then_some(&tenant.hpo),
        })
        .collect();
    let h = &env.components.hpo;
    // Validation refuses an unknown server version before anything renders.
    let hpo_packages = optuna_server(&h.optuna_version)
        .map(|s| {
            vec![
                format!("optuna=={}", s.optuna),
                format!("optuna-dashboard=={}", h.dashboard_version),
                format!("grpcio=={}", s.grpcio),
                format!("protobuf=={}", s.protobuf),
            ]
        })
        .unwrap_or_default();
    Context {
        env,
        target: env.target.kind,
        platform_namespace: &env.platform_namespace,
        trainer_api: trainer_api(&env.components.trainer.version).unwrap_or("runtimePatches"),
        tenants,
        trainjobs: jobs.iter().filter(|j| j.spec.framework != Framework::Custom).collect(),
        custom_jobs: jobs.iter().filter(|j| j.spec.framework == Framework::Custom).collect(),
        hpo_packages,
        secrets: env
            .managed_secrets()
            .iter()
            .map(|s| SecretView {
                name: &s.name,
                from: &s.from,
                // Validation parsed every template already; one that fails here renders as
                // written rather than panicking.
                go_templates: s
                    .data
                    .iter()
                    .map(|(k, v)| {
                        let go =
                            ValueTemplate::parse(v).map(|t| t.to_go_template()).unwrap_or_else(|_| v.clone());
                        (k.as_str(), go)
                    })
                    .collect(),
            })
            .collect(),
        hpo_batches: specs.batches,
    }
}

fn standard_labels(env: &Environment, component: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name", component.to_string()),
        ("app.kubernetes.io/part-of", "trainstack".to_string()),
        ("app.kubernetes.io/managed-by", "trainstack".to_string()),
        ("trainstack.io/environment", env.name.clone()),
    ])
}

fn parse_output(text: &str, file: &str) -> Result<Vec<serde_json::Value>, RenderError> {
    let docs = yaml::parse_stream(text).map_err(|e| {
        let line = e.pos.map(|p| p.line).unwrap_or(0);
        RenderError::Yaml {
            file: file.to_string(),
            message: e.message.clone(),
            line,
            text: text.lines().nth(line.saturating_sub(1)).unwrap_or("").to_string(),
        }
    })?;
    docs.into_iter()
        .map(|d| {
            serde_json::to_value(d).map_err(|e| RenderError::NotAnObject {
                file: file.into(),
                index: 0,
                what: e.to_string(),
            })
        })
        .collect()
}

fn check_object(obj: &serde_json::Value, file: &str, index: usize) -> Result<(), RenderError> {
    let missing = |what: &str| RenderError::NotAnObject { file: file.into(), index, what: what.into() };
    if !obj.is_object() {
        return Err(missing("not a mapping"));
    }
    for (ptr, what) in
        [("/apiVersion", "no apiVersion"), ("/kind", "no kind"), ("/metadata/name", "no metadata.name")]
    {
        if obj.pointer(ptr).and_then(|v| v.as_str()).is_none_or(str::is_empty) {
            return Err(missing(what));
        }
    }
    Ok(())
}

fn check_duplicates(set: &[Manifest]) -> Result<(), RenderError> {
    let mut seen: HashMap<(String, String, String, String), &Manifest> = HashMap::new();
    for m in set {
        let key = (
            m.group().to_string(),
            m.kind().to_string(),
            m.namespace().unwrap_or("").to_string(),
            m.name().to_string(),
        );
        if let Some(first) = seen.insert(key, m) {
            return Err(RenderError::Duplicate {
                id: m.id(),
                first: first.origin.to_string(),
                second: m.origin.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::build_context;

    #[test]
    fn render_batch_renders_one_batch_file_labelled_and_in_apply_order() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = [root.join("environments/base.yaml"), root.join("environments/kind.yaml")];
        let layered = crate::env::read(&files, &crate::env::LoadOptions::default()).expect("kind reads");
        let loaded = layered.load(None).expect("kind loads");
        let templates = super::Templates::load(None).expect("templates");
        let path = root.join("environments/hpo-kind/quickstart.yaml");
        let (batch, set) = super::render_batch(&loaded, &path, &templates).expect("quickstart renders");
        assert_eq!((batch.name.as_str(), batch.study.as_str()), ("quickstart", "my-first-study"));
        let ids: Vec<String> = set.iter().map(|m| m.id()).collect();
        assert_eq!(ids, ["ConfigMap/alice/hpo-quickstart", "Job/alice/hpo-quickstart"]);
        for m in &set {
            assert_eq!(m.obj["metadata"]["labels"]["trainstack.io/hpo-batch"], "quickstart");
            assert_eq!(m.obj["metadata"]["labels"]["app.kubernetes.io/component"], "hpo");
        }
    }

    #[test]
    fn every_documented_template_variable_is_in_the_render_context() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = [root.join("environments/base.yaml"), root.join("environments/kind.yaml")];
        let layered = crate::env::read(&files, &crate::env::LoadOptions::default()).expect("kind reads");
        let loaded = layered.load(None).expect("kind loads");
        let jobs = crate::jobs::load(&loaded).expect("its jobs load");
        let batches = crate::hpo::load(&loaded).expect("its trial batches load");
        let specs = super::Specs { jobs: &jobs, batches: &batches };
        let ctx = serde_json::to_value(build_context(&loaded.env, specs)).unwrap();
        let doc = std::fs::read_to_string(root.join("docs/templates.md")).unwrap();
        // The first cell of each table row: `variable` or `list[].field`.
        let documented: Vec<&str> =
            doc.lines().filter_map(|l| l.strip_prefix("| `")?.split('`').next()).collect();
        let first = |list: &str| {
            ctx[list]
                .as_array()
                .and_then(|a| a.first())
                .cloned()
                .unwrap_or_else(|| panic!("no {list} in kind"))
        };
        for path in &documented {
            match path.split_once("[].") {
                Some((list, field)) => {
                    assert!(first(list).get(field).is_some(), "{path} is not in the context")
                }
                None => assert!(ctx.get(path).is_some(), "{path} is not in the context"),
            }
        }
        // And the other way: nothing templates receive is left out of the tables.
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        for key in keys(&ctx) {
            assert!(documented.contains(&key.as_str()), "variable {key} is not in docs/templates.md");
        }
        for (list, documented_as) in [
            ("tenants", "tenants"),
            ("trainjobs", "trainjobs"),
            ("custom_jobs", "trainjobs"),
            ("hpo_batches", "hpo_batches"),
        ] {
            for field in keys(&first(list)) {
                let path = format!("{documented_as}[].{field}");
                assert!(documented.contains(&path.as_str()), "{list}[].{field} is not in docs/templates.md");
            }
        }
    }
}

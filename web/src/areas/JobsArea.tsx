export default function JobsArea() {
  return (
    <section>
      <h1>Jobs</h1>
      <p>Your preview and full reconstructions will be listed here, with their progress and logs.</p>
      <p className="empty">No jobs yet.</p>
    </section>
  );
}

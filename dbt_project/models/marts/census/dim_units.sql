-- The hospital's units from the reference data, with the Title 22 ratio that applies
-- to each unit type.
select
    u.facility_code::text as facility_code,
    u.unit_code::text as unit_code,
    u.unit_name::text as unit_name,
    u.unit_type::text as unit_type,
    (u.unit_type <> 'emergency') as is_inpatient_unit,
    u.staffed_beds::integer as staffed_beds,
    u.licensed_beds::integer as licensed_beds,
    u.cost_center::text as cost_center,
    r.max_patients_per_licensed_nurse::integer as max_patients_per_licensed_nurse,
    r.citation::text as ratio_citation
from {{ ref('units') }} u
left join {{ ref('nurse_ratios') }} r using (unit_type)
